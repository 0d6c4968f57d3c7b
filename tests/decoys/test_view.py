"""The Decoys page's summary table: one text column, whatever the measure's type (Arrow needs one type)."""

from __future__ import annotations

from backend.services.decoys import summary_rows


def test_summary_rows_render_numbers_flags_and_counts_as_text():
    rows = summary_rows(
        {"mean_fidelity_raw": 0.123456, "all_constraints_ok": True, "closer": "3 of 4 images"}
    )
    assert rows == [
        {"measure": "mean_fidelity_raw", "value": "0.1235"},
        {"measure": "all_constraints_ok", "value": "yes"},
        {"measure": "closer", "value": "3 of 4 images"},
    ]
    assert summary_rows({"all_topk_label_kept": False}) == [{"measure": "all_topk_label_kept", "value": "no"}]
