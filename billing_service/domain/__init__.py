"""Pure billing domain: invoice numbering, tax, invoices and credit notes, revenue buckets. No I/O here."""
