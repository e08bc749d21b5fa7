"""The Textual face of qrtui. Nothing outside this package imports Textual. A face: screens
reach DICOM only through qrtui.worker, and never import the app."""
