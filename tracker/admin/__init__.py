"""Administration: people, phones, staff accounts, patrol grids and rosters (docs/admin-api.md).

Each module checks every field, the account's role and scope, refuses duplicates, and
records an audit row for every change in the change's transaction; the API and the CLI
both come through here.
"""
