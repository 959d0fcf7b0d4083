"""Shows reports that tests leave on the config (e.g. the timm suite's per-function counts) after the run."""


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for title, text in getattr(config, 'csba_reports', []):
        terminalreporter.write_sep('=', title)
        terminalreporter.write_line(text)
