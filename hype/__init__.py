"""hype: Human eYe Perceptual Evaluation of generative image models, with automated metrics beside it."""

__version__ = "0.1.0"
