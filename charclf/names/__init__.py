"""A typed name -> the letters the network reads: folding, transliteration, scripts, readings, full names."""
