// Subcommands of the `nic` tool; each returns the process exit code.
// Exit codes: 0 ok, 1 the input was refused (error code on stderr), 2 usage.
#pragma once

int cmd_key(int argc, char** argv);
int cmd_url(int argc, char** argv);
int cmd_sign(int argc, char** argv);
int cmd_transform(int argc, char** argv);
