"""Recurrent networks on digit palindromes: hand-written and torch cells, a Lightning classifier, the inits."""
