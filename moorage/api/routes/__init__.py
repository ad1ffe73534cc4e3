"""One router per resource; ``moorage.api.app`` wires them."""
