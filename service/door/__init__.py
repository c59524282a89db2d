"""What guards and admins do at the door: manual exits, the deny list, overrides
(allow once) with their rules, who is inside and the occupancy chart.
"""
