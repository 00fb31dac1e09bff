"""Adapters that let code written for other RDB tools run on rdbkit's decoder.

``rdbkit.compat.rdbtools``: rdbtools' ``RdbParser`` + ``RdbCallback``.
"""
