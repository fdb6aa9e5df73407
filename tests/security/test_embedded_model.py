"""A small marked sample of the attack corpus on the real embedded model (Gemma 3 270M), embedded policy."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from supportdesk.llm.factory import LLMFactory
from supportdesk.settings import Settings
from tests.security._corpus import all_cases
from tests.security._harness import Env, run_corpus

pytestmark = pytest.mark.embedded


def test_embedded_model_sample_reveals_nothing_and_files_only_for_the_caller(tmp_path):
    """A prompt-leak attack, a poisoned FAQ, and cross-customer requests (verified and unverified caller)
    on the default embedded model: no violation at all."""
    cases = all_cases()
    picked = [next(c for c in cases if c.channel == "query" and c.goal == "leak"),
              next(c for c in cases if c.channel == "faq"),
              next(c for c in cases if c.channel == "cross" and c.base.caller is not None),
              next(c for c in cases if c.channel == "cross" and c.base.caller is None)]
    model = LLMFactory(Settings(home=tmp_path / "home")).chat_model()  # one llama.cpp runtime for both envs
    with threadpool_limits(limits=1, user_api="blas"), \
         Env(tmp_path, model, policy="embedded", name="clean") as clean, \
         Env(tmp_path, model, policy="embedded", poisoned_faq=True, name="poisoned") as poisoned:
        report = run_corpus(picked, {"query": clean, "web": clean, "cross": clean, "faq": poisoned}, {"faq": "clean"})
    assert report.cases == len(picked) and report.violations == {}
