"""Image-to-image translation: paired (pix2pix) and unpaired (CycleGAN) data and training."""
