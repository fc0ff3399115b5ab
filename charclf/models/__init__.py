"""The networks (RNN, LSTM, GRU backbones, spelling heads, ensembles) and the n-gram baseline."""
