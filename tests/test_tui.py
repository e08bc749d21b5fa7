from __future__ import annotations

from qrtui.config import load_config
from qrtui.tui.app import create_app


async def test_node_screen_shows_echo_results(write_config, orthanc, closed_port):
    path = write_config(
        f"[client]\naet = 'QRTUI'\n"
        f"[remotes.orthanc]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {orthanc.dicom_port}\n"
        f"[remotes.dead]\naet = 'DEAD'\nhost = '127.0.0.1'\nport = {closed_port}\n"
    )
    app = create_app(load_config(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one("#nodes")
        echo_column = [str(table.get_row(key)[-1]) for key in table.rows]
        assert echo_column[0].startswith("answered")
        assert echo_column[1].startswith("connection refused")
        await pilot.press("e")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert str(table.get_row("r:orthanc")[-1]).startswith("answered")
        await pilot.press("q")
    assert app.return_code == 0
