"""Speech synthesis engines behind a small interface (one loaded voice per process)."""
