"""Test support: a throwaway PostgreSQL and in-process service stacks on ephemeral ports."""
