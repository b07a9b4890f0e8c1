"""Order pricing for the example shop."""


def subtotal(prices: list[float]) -> float:
    return sum(prices)


def total(prices: list[float], discount: float) -> float:
    """The order total after a fractional discount (0.1 means 10% off)."""
    return subtotal(prices) - discount
