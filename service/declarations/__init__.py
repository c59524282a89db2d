"""Health declarations (khai báo y tế): the input model, the rules that judge them
(policy, pure) with an official result ranked over the person's word (official_rank),
filing and review with their SQL, proof of identity for a returning person, and the
public form with its result and print pages.
"""
