-- The shop that signed a user up. A shop sends purchases only for its own users; NULL
-- (a user an admin signed up, or one from before this was recorded) belongs to no shop,
-- and any shop may send their purchases as before.
ALTER TABLE users ADD COLUMN shop_id uuid REFERENCES shops (id);
