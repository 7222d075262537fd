from warpsched.cli import entry

entry()
