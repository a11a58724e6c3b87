"""hybridrec: hybrid movie recommendations from ratings and LLM text embeddings.

The Python API (``hybridrec.python_api``), imported lazily so that ``import hybridrec`` stays cheap:

    from hybridrec import cross_validate, load_service

    result = cross_validate("cv=fold", "cv.fold=1", "final_fit=false")
    service = load_service()
    service.ask(user_id=1, n=5).rows()
    service.ask(user_text="I love film noir, but no musicals", explain=True).rows()
"""

__version__ = "0.1.0"
__all__ = ["compose", "cross_validate", "load_service"]


def __getattr__(name: str):
    if name in __all__:
        from hybridrec import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module 'hybridrec' has no attribute {name!r}")
