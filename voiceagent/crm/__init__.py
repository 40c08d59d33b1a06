"""The CRM: debtor accounts, campaigns, calls and what calls commit (SQLAlchemy 2.0)."""
