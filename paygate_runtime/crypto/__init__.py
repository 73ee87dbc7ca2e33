"""Cryptographic building blocks shared by the services (pure: no I/O)."""
