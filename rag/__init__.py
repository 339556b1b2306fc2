"""Answers: hybrid cross-lingual retrieval, cited extractive or LLM answers, evaluation."""
