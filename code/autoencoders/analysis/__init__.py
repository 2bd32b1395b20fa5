"""Each chapter's computations over trained models, one module per chapter
(``analysis/<chapter>.py``). A function here trains or fetches its models
through :func:`autoencoders.cache.get_or_train`, computes with
``inference`` and ``metrics``, and returns a small dataclass of results that
the chapter glues and plots. Nothing below this room imports it."""
