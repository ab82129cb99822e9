"""ftk, the fine-tuning kit: fine-tune pretrained keras-hub backbones on Keras 3.

`import ftk` imports neither keras nor tensorflow: the Keras backend is chosen from
the configuration first (see `ftk.backend`), then the modules that need Keras are
imported.
"""

__version__ = "0.1.0"
