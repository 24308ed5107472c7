"""Inference across families: what the Media page can pick (trained runs of any family, pretrained models).

Each family's own entry points live in its package under core/tasks (its TaskSpec lists them), e.g.

    from core.tasks.classification.predictor import load_run_predictor
    from core.data.media import open_image
    load_run_predictor(run_id, "best").top_k(open_image(data, "photo.jpg"), k=5)   # [("cat", 0.91), ...]
"""

from core.inference.sources import clear_caches, default_comparison, default_source, list_model_sources, load_source

__all__ = ["clear_caches", "default_comparison", "default_source", "list_model_sources", "load_source"]
