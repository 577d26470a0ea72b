from awmctl.cli import app

app(prog_name="awmctl")
