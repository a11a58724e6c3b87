"""Every bad argument of every entry point: one line on stderr, exit 2 (1 for a missing bundle), no
traceback, and nothing silently truncated or guessed."""

from __future__ import annotations

import pytest
from test_entry_points import run_cli

BAD = [
    ("predict.py", ["user_id=1.5"], "user_id must be a whole number or null, got 1.5"),
    ("predict.py", ["user_id=abc"], "user_id must be a whole number or null, got 'abc'"),
    ("predict.py", ["user_id=true"], "user_id must be a whole number or null, got True"),
    ("predict.py", ["user_id=1", "item_id=50.9"], "item_id must be a whole number or null, got 50.9"),
    ("predict.py", ["user_id=1", "n=abc"], "n must be a whole number, got 'abc'"),
    ("predict.py", ["user_id=1", "n=2.5"], "n must be a whole number, got 2.5"),
    ("predict.py", ["user_id=1", "exclude_seen=maybe"], "exclude_seen must be true or false, got 'maybe'"),
    ("predict.py", ["user_id=1", "explain=1"], "explain must be true or false, got 1"),
    ("predict.py", ["user_id=1", "format=xml"], "format must be table or json, got 'xml'"),
    ("predict.py", ["user_id=1", "max_text_chars=many"], "max_text_chars must be a whole number, got 'many'"),
    ("predict.py", ["user_id=1", "+foo=1"], "foo is not a setting; the settings:"),
    ("predict.py", ["user_id=1", "foo=1"], "foo is not a setting; the settings:"),
    ("predict.py", ["user_id=[1"], "no viable alternative at input '[1'"),
    ("predict.py", ["user_id=1", "user_text=hi"], "give exactly one of user_id"),
    ("predict.py", [], "give exactly one of user_id"),
    ("serve.py", ["port=abc"], "port must be a whole number, got 'abc'"),
    ("serve.py", ["port=0"], "port must be 1-65535"),
    ("serve.py", ["port=70000"], "port must be 1-65535"),
    ("serve.py", ["workers=0"], "workers and max_text_chars at least 1"),
    ("serve.py", ["workers=1.5"], "workers must be a whole number, got 1.5"),
    ("serve.py", ["log_level=loud"], "log_level must be critical, error, warning, info or debug"),
    ("serve.py", ["max_body_bytes=big"], "max_body_bytes must be a whole number, got 'big'"),
    ("serve.py", ["cors_origins=x"], "cors_origins must be a list, got 'x'"),
    ("serve.py", ["rate_limit=lots"], "rate_limit must read like 600/minute or 10/second, got 'lots'"),
    ("serve.py", ["cold_start_slots=0"], "cold_start_slots and text_cache_size must be at least 1"),
    ("serve.py", ["text_budget_s=fast"], "text_budget_s must be a number, got 'fast'"),
    ("serve.py", ["+foo=1"], "foo is not a setting; the settings:"),
    ("serve.py", ["foo=1"], "foo is not a setting; the settings:"),
    ("train.py", ["seed=abc"], "seed must be a whole number, got 'abc'"),
    ("train.py", ["final_fit=maybe"], "final_fit must be true or false, got 'maybe'"),
    ("train.py", ["fold_workers=two"], "fold_workers must be a whole number, got 'two'"),
    ("train.py", ["tags=x"], "tags must be a list, got 'x'"),
    ("train.py", ["+foo=1"], "foo is not a setting; the settings:"),
    ("train.py", ["foo=1"], "foo is not a setting; the settings:"),
    ("train.py", ["model=nonsense"], "Could not find 'model/nonsense'"),
    (
        "train.py",
        ["+model.net.hiddn=3"],
        "model.net.hiddn is not a setting of hybridrec.models.hybrid.HybridRecModel",
    ),
    ("eval.py", [], "bundle must be given (bundle=...)"),
    ("eval.py", ["bundle=x", "format=xml"], "format must be table or json, got 'xml'"),
    ("eval.py", ["bundle=x", "+foo=1"], "foo is not a setting; the settings:"),
]


@pytest.mark.parametrize(("script", "args", "message"), BAD, ids=[f"{s} {' '.join(a)}" for s, a, _ in BAD])
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path, script, args, message):
    extra = {
        "train.py": [f"hydra.run.dir={tmp_path}"],
        "predict.py": [f"bundle={tmp_path}"],
        "serve.py": [f"bundle={tmp_path}"],
    }
    result = run_cli(script, *args, *extra.get(script, []), timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-1500:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "Traceback" not in result.stderr


def test_a_missing_bundle_is_one_line_and_exit_1(tmp_path):
    result = run_cli("predict.py", f"bundle={tmp_path / 'none'}", "user_id=1")
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"error: no model bundle at {tmp_path / 'none'}; pass a bundle folder or a training run folder that holds one"
    ]
