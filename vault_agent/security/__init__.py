"""The security boundary every tool call passes: grants, path/URL/shell rules, sandbox, secrets, leak scan, approvals."""
