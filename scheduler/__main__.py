from scheduler.cli import entry

entry()
