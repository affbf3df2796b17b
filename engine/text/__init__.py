"""Sequences of discrete tokens: the data (an oracle LSTM, or lines of a text file), the networks of
sequence GANs (an LSTM generator, a CNN discriminator), their metrics (NLL, BLEU) and their preview
(tokens shaded by the discriminator's reward). Used by the SeqGAN family (engine.algorithms.seqgan)."""
