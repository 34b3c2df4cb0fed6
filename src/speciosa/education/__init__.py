"""Patient education pages (content as data, each statement cited) and the shared
decision aid (an option grid whose choice is recorded with both names, date and reason)."""
