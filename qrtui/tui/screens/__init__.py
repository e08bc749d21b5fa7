"""One module per screen. No DICOM here: blocking work runs in thread workers calling the
headless core, and comes back as messages."""

from qrtui.tui.screens.confirm import ConfirmScreen
from qrtui.tui.screens.editor import NodeEditorScreen
from qrtui.tui.screens.help import HelpScreen
from qrtui.tui.screens.history import HistoryScreen, RunDetailScreen
from qrtui.tui.screens.nodes import NodesScreen
from qrtui.tui.screens.query import QueryScreen
from qrtui.tui.screens.results import ResultsScreen

__all__ = [
    "ConfirmScreen",
    "HelpScreen",
    "HistoryScreen",
    "NodeEditorScreen",
    "NodesScreen",
    "QueryScreen",
    "ResultsScreen",
    "RunDetailScreen",
]
