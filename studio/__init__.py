"""GAN Studio's window (PySide6 + pyqtgraph). It reaches the engine only through studio.bridge."""
