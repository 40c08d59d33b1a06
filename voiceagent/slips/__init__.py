"""Payment slips: render them (PDF, e-mail, SMS) and deliver those the calls asked for."""
