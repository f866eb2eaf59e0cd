"""A test per row of docs/guarantees.md (issue 24, item 5): every bullet row of the page is named
here, by its bold lead words, with the tests that hold the kit to that promise; this test fails when a
row has no entry (a new promise without a test), when an entry names a row the page no longer has, or
when a named test function does not exist in tests/.

The mapping is read by hand: each test listed checks what its row promises, on real processes where
the row is about processes. The test bodies themselves are what keep each promise true.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "guarantees.md"

ROWS = {
    "A run never destroys a file it did not create.": [
        "test_guarantees.py::test_training_text_as_save_path_is_refused",
        "test_guarantees.py::test_source_file_folder_fifo_and_file_parent_are_refused",
        "test_guarantees.py::test_device_file_is_refused_and_stays_a_device",
        "test_guarantees.py::test_read_only_checkpoint_and_folder_are_refused_even_as_root",
        "test_guarantees.py::test_another_runs_checkpoint_needs_overwrite_and_own_run_continues",
        "test_guarantees.py::test_runs_are_named_by_default_and_never_share_a_file",
        "test_paired_guarantees.py::test_another_runs_checkpoint_is_replaced_only_with_overwrite",
        "test_paired_guarantees.py::test_a_masked_span_checkpoint_or_a_users_file_is_not_replaced",
        "test_safe_outputs.py::test_save_dir_is_checked_before_step_1",
    ],
    "One process per checkpoint.": [
        "test_guarantees.py::test_a_second_process_on_the_same_path_is_refused_and_a_killed_one_leaves_no_lock",
        "test_paired_guarantees.py::test_a_second_process_on_the_same_path_is_refused_and_a_killed_one_leaves_no_lock",
    ],
    "Checked before step 1:": [
        "test_guarantees.py::test_file_size_limit_is_refused_before_step_1",
        "test_guarantees.py::test_no_room_on_the_disk_is_refused_before_step_1",
        "test_guarantees.py::test_integer_ranges_and_non_finite_floats_are_one_line",
        "test_guarantees.py::test_every_float_field_rejects_inf_and_nan",
        "test_guarantees.py::test_max_length_beyond_the_encoders_positions_is_refused",
        "test_guarantees.py::test_sizes_that_cannot_fit_in_memory_are_refused_with_the_figure",
        "test_guarantees.py::test_python_api_checks_types_and_names_the_field",
        "test_guarantees.py::test_texts_must_be_a_sequence_of_strings",
        "test_guarantees.py::test_paired_config_checks_types_and_names_the_field",
        "test_paired_guarantees.py::test_file_size_limit_is_refused_before_step_1",
    ],
    "The last good checkpoint is good.": [
        "test_guarantees.py::test_lr_10_names_a_finite_checkpoint_of_this_run",
        "test_guarantees.py::test_nan_weights_are_never_saved_and_no_checkpoint_is_said_so",
        "test_paired_guarantees.py::test_a_diverged_run_names_a_finite_checkpoint_of_this_run_or_none",
    ],
    "Signals.": [
        "test_guarantees.py::test_first_signal_saves_and_stops_non_zero_and_resume_is_exact",
        "test_guarantees.py::test_stale_temp_files_are_removed_at_the_next_save",
        "test_guarantees.py::test_killed_saves_leave_temp_files_that_the_next_save_removes",
        "test_guarantees.py::test_disk_full_during_a_save_is_one_line_and_keeps_the_previous_checkpoint",
        "test_paired_guarantees.py::test_signal_saves_stops_non_zero_and_resume_is_exact",
    ],
    "Resume is exact, history included.": [
        "test_guarantees.py::test_resumed_history_equals_the_uninterrupted_one",
        "test_paired_guarantees.py::test_resumed_history_equals_the_uninterrupted_one_for_any_intervals",
        "test_train.py::test_corrupt_checkpoint_is_a_clear_error",
        "test_bad_inputs.py::test_a_checkpoint_that_would_run_code_is_refused_and_never_runs_it",
    ],
    "One line everywhere.": [
        "test_guarantees.py::test_unreadable_text_file_is_one_line",
        "test_guarantees.py::test_a_regular_file_that_fails_to_read_is_one_line",
        "test_guarantees.py::test_checkpoints_of_other_versions_or_kinds_are_one_line",
        "test_guarantees.py::test_bench_flags_are_one_line",
        "test_guarantees.py::test_paired_cli_flags_and_save_path_are_one_line",
        "test_guarantees.py::test_jsonl_round_trip_of_any_string_save_jsonl_writes",
    ],
    "One writer": [
        "test_writer.py::test_a_users_dot_tmp_file_survives_every_writer",
        "test_writer.py::test_a_folder_is_swapped_in_whole_or_not_at_all",
        "test_writer.py::test_a_full_disk_leaves_the_old_version_whole_and_no_temporary",
        "test_writer.py::test_a_stale_temporary_folder_of_a_dead_writer_is_removed",
        "test_writer.py::test_sigkill_mid_write_leaves_a_whole_version_and_the_next_writer_cleans_up",
        "test_safe_outputs.py::test_a_failed_save_in_place_leaves_the_model_it_started_from_whole",
        "test_safe_outputs.py::test_a_failed_export_leaves_the_earlier_export_whole",
        "test_study_work_files.py::test_a_full_disk_while_preparing_is_one_line_exit_2_and_leaves_nothing",
        "test_study_work_files.py::test_sigkill_while_preparing_leaves_the_users_folder_untouched",
    ],
    "One process per output:": [
        "test_writer.py::test_two_studies_on_one_out_the_second_is_refused_and_a_planted_tmp_survives",
        "test_writer.py::test_the_notebook_times_and_probe_scores_refuse_an_out_another_process_writes",
    ],
    "Checked before any work:": [
        "test_safe_outputs.py::test_save_dir_is_checked_before_step_1",
        "test_safe_outputs.py::test_export_refuses_an_unwritable_place_a_dangling_link_and_a_full_disk_in_one_line",
        "test_safe_outputs.py::test_pretrain_refuses_an_unwritable_out_before_any_work",
        "test_safe_outputs.py::test_non_finite_weights_are_not_saved",
        "test_safe_outputs.py::test_export_refuses_non_finite_weights",
        "test_bad_inputs.py::test_token_cache_that_names_a_file_or_an_unwritable_place_is_one_line",
    ],
    "What the kit reads back is verified:": [
        "test_data.py::test_a_cache_damaged_on_disk_is_caught_by_its_checksum_and_rebuilt",
        "test_data.py::test_a_cache_that_does_not_match_is_rebuilt_with_a_notice",
        "test_writer.py::test_the_study_refuses_a_damaged_results_file_on_resume_in_one_line",
        "test_bad_inputs.py::test_paired_resume_of_a_checkpoint_with_missing_or_other_keys_is_one_line",
        "test_bad_inputs.py::test_resuming_a_crafted_checkpoint_is_one_line",
        "test_safe_outputs.py::test_export_of_a_crafted_checkpoint_is_one_line_and_writes_nothing",
    ],
    "No line is tokenised whole:": [
        "test_bad_inputs.py::test_no_line_is_tokenised_whole_only_to_be_truncated",
        "test_bad_inputs.py::test_a_jsonl_line_that_python_cannot_hold_as_text_is_one_line",
        "test_bad_inputs.py::test_the_masked_span_trainer_refuses_architectures_that_are_not_masked_encoders",
        "test_bad_inputs.py::test_save_path_with_a_trailing_slash_is_refused",
    ],
    "Stopped within a second, at any stage:": [
        "test_stop_within_a_second.py::test_sigterm_to_exit_within_the_bound",
        "test_stop_within_a_second.py::test_sigterm_while_the_data_is_read_stops_at_once_and_writes_nothing",
        "test_stop_within_a_second.py::test_masked_span_step_dropped_mid_backward_resumes_exactly",
        "test_stop_within_a_second.py::test_paired_step_dropped_mid_backward_resumes_exactly",
    ],
}


def page_rows(page: Path = PAGE) -> list:
    """The bold lead words of every bullet row of docs/guarantees.md (`- **…**`)."""
    return re.findall(r"^- \*\*(.+?)\*\*", page.read_text(encoding="utf-8"), flags=re.MULTILINE)


def functions_in(file: str) -> set:
    """The names of the test functions defined at the top level of tests/`file`."""
    path = ROOT / "tests" / file
    if not path.exists():
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_the_page_has_rows_and_each_is_mapped_to_tests():
    rows = page_rows()
    assert len(rows) >= 10, rows  # the parser finds the page's rows
    assert [r for r in rows if r not in ROWS] == [], "a row of docs/guarantees.md without tests here"
    assert [r for r in ROWS if r not in rows] == [], "an entry here for a row the page no longer has"
    assert all(ROWS[r] for r in rows)


def test_every_mapped_test_exists():
    missing = []
    for tests in ROWS.values():
        for node in tests:
            file, name = node.split("::")
            if name not in functions_in(file):
                missing.append(node)
    assert missing == []


def test_the_check_can_fail(tmp_path):
    """A row the mapping lacks, and a test name that does not exist, are both caught."""
    page = tmp_path / "guarantees.md"
    page.write_text(PAGE.read_text(encoding="utf-8") + "\n- **A new promise.** untested\n", encoding="utf-8")
    assert "A new promise." in page_rows(page) and "A new promise." not in ROWS
    assert "test_no_such_test" not in functions_in("test_guarantees.py")
    assert "test_first_signal_saves_and_stops_non_zero_and_resume_is_exact" in functions_in("test_guarantees.py")
