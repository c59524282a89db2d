"""Health declarations (khai báo y tế): the input model, the rules that judge them
(policy, pure), filing and review with their SQL, proof of identity for a returning
person, and the public form with its result and print pages.
"""
