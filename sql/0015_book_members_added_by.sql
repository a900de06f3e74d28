-- The run whose load first saved each book member. While that load is unfinished (its row is still in
-- book_load), the members it added are unconfirmed: it saved them while Dotdigital imported them, so Dotdigital
-- may have refused them or never imported them. The next load settles exactly those rows, instead of taking
-- them for people the book holds. Members saved before this column existed have none.
ALTER TABLE book_member ADD COLUMN added_by TEXT;
