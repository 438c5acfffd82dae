-- The notifications addressed to a municipality (3003/3007/3005, "Notifiche"): read by
-- recipient in queuing order.
CREATE INDEX outbox_destinatario ON outbox (destinatario, id);
