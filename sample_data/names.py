"""Vietnamese-looking place, person and organisation names for the synthetic province."""

from __future__ import annotations

import random

SYLLABLES = ["Phú", "Tân", "An", "Bình", "Long", "Hòa", "Thạnh", "Mỹ", "Phước", "Hưng", "Lợi", "Thuận",
             "Đông", "Tây", "Nhơn", "Định", "Khánh", "Lộc", "Thới", "Giao", "Sơn", "Quới", "Hiệp", "Châu",
             "Thành", "Vĩnh", "Hữu", "Đức", "Trung", "Nghĩa", "Lương", "Xuân", "Hội", "Tường", "Phong"]
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Phan", "Trương", "Bùi", "Đặng", "Đỗ", "Ngô"]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Thanh", "Ngọc", "Quốc", "Kim"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hạnh", "Hoa", "Hùng", "Lan", "Long", "Mai", "Nam", "Phúc", "Tâm",
         "Thảo", "Trí", "Tuấn", "Vy", "Yến", "Sơn", "Hiếu"]
STREETS = ["Đồng Khởi", "Nguyễn Đình Chiểu", "Hùng Vương", "Trần Phú", "Lê Lợi", "Quốc lộ 60", "Quốc lộ 57",
           "Đường tỉnh 883", "Đường tỉnh 887", "Phạm Hùng", "Ấp Chợ", "Ấp 3", "Ấp Phú Hòa"]


def place_names(rng: random.Random, n: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        name = f"{rng.choice(SYLLABLES)} {rng.choice(SYLLABLES)}"
        if name.split()[0] == name.split()[1] or name in seen:
            continue
        seen.add(name)
        out.append(name)
    return out


def person(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def address(rng: random.Random, commune: str) -> str:
    return f"{rng.randint(1, 250)} {rng.choice(STREETS)}, xã {commune}"
