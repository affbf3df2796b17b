"""Speech enhancement (SEGAN): audio files, synthesised speech, noise, metrics and classical baselines."""
