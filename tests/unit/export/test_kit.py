"""`ftk.export.kit`: the generated serving clients (run against servers in
tests/integration/test_serving_clients.py)."""

from ftk.export.kit import GENERATED_MARK, write_clients
from ftk.tasks import get_task

TEXT_TASK = get_task("text_classification")


def test_user_edited_clients_are_left_alone(tmp_path):
    write_clients(tmp_path, "news", tmp_path / "saved_models/news/1", TEXT_TASK.signature)
    mine = tmp_path / "serving" / "clients" / "predict_rest.py"
    mine.write_text("# my own client\n")
    again = write_clients(tmp_path, "news", tmp_path / "saved_models/news/2", TEXT_TASK.signature)
    assert mine.read_text() == "# my own client\n" and mine not in again
    sh = (tmp_path / "serving" / "clients" / "predict.sh").read_text()
    assert GENERATED_MARK in sh.splitlines()[1] and "news/2" in sh and 'MODEL="news"' in sh
