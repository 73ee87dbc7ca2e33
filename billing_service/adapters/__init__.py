"""Billing adapters: persistence, receipt renderers and other I/O around the pure domain."""
