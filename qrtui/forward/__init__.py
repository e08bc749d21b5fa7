"""Delivery: the dose objects the store holds, forwarded to the destinations the ledger names
(a DICOM node, a folder, a command), each exactly once. report.py says what an answer means
for the ledger; files.py delivers to folders and commands; deliver.py runs a pass. A part:
it may import the transport (qrtui.dicom) and the keeping layers, never the worker or a face.
"""

from __future__ import annotations

from qrtui.forward.deliver import deliver
from qrtui.forward.report import DeliveryReport, DestinationReport, judge

__all__ = ["DeliveryReport", "DestinationReport", "deliver", "judge"]
