"""Deep Learning Lab core: data sets, models, training engine, run store and job runner.

Nothing here imports streamlit, and importing `core` itself is cheap (torch is imported only by
the modules that need it), so the app's first page paints before torch loads.
"""

__version__ = "0.1.0"
