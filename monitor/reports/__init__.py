"""Reports: the HTML drift report, the weekly report, plots and the terminal summary."""
