"""Helpers shared by the tests, imported one way: ``from tests.helpers import finetune_worker`` (or ``.toy_task``,
``.stub_notebooks``, ``.synth_results``). Fixtures shared by many files live in ``tests/conftest.py``.

- :mod:`~tests.helpers.finetune_worker`: a tiny fine-tuning run, importable and runnable as a script (torchrun,
  SIGKILL + resume).
- :mod:`~tests.helpers.toy_task`: a tiny image task on disk and its profile.
- :mod:`~tests.helpers.stub_notebooks`: stub notebooks for every pipeline stage.
- :mod:`~tests.helpers.synth_results`: synthetic results frames shaped like real runs.
"""
