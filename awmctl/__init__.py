"""awmctl: policy learning by backpropagation through world models (Ma et al., ICML 2024)."""

__version__ = "0.1.0"
