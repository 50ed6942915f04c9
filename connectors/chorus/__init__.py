"""Chorus Pro (State e-invoicing portal, through PISTE): API client and simulator."""
