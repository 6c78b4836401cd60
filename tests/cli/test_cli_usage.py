"""Usage errors of every command are one ``Error:`` line with exit status 2."""

import pytest


@pytest.mark.parametrize(
    "args, message",
    [
        (["bogus"], "Error: No such command 'bogus'."),
        (["--bogus"], "Error: No such option '--bogus'."),
        (["convolve", "-k", "box", "--stride", "0"], "Error: Invalid value for '--stride': 0 is not in the range x>=1."),
        (["filters", "show"], "Error: Missing argument 'NAME|KERNEL'."),
    ],
)
def test_usage_errors_are_one_error_line(args, message):
    from click.testing import CliRunner

    from convcli.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message  # no usage block, no hint, no traceback
