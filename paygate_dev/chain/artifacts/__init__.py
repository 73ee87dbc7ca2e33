"""Compiled contract artifacts (package data), built by contracts/build.mjs."""
