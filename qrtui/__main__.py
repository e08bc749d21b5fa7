from qrtui.cli import run

run()
