// A doubly linked list threaded through its elements, so that adding and removing cost no
// allocation and an element can unlink itself in O(1) when it dies.
//
// An element type T derives from IntrusiveList<T>::Hook. The list never owns its elements:
// whoever owns one must unlink it before it is destroyed.
#pragma once

#include <cstddef>

namespace sniroute::core {

template <typename T>
class IntrusiveList {
public:
    class Hook {
        friend class IntrusiveList;
        // No "linked" flag: an element is linked when it has a predecessor or is the head. A
        // session pays for every byte of this, for as long as it lives.
        T* prev_ = nullptr;
        T* next_ = nullptr;
    };

    IntrusiveList() = default;
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;

    void push_front(T* e) {
        Hook& h = *e;
        h.prev_ = nullptr;
        h.next_ = head_;
        if (head_) static_cast<Hook&>(*head_).prev_ = e;
        head_ = e;
        ++size_;
    }

    void remove(T* e) {
        Hook& h = *e;
        if (!h.prev_ && head_ != e) return;  // not in this list
        if (h.prev_)
            static_cast<Hook&>(*h.prev_).next_ = h.next_;
        else
            head_ = h.next_;
        if (h.next_) static_cast<Hook&>(*h.next_).prev_ = h.prev_;
        h.prev_ = h.next_ = nullptr;
        --size_;
    }

    // Calls f on every element; f may remove (or destroy) the element it is given, because the
    // next one is read before the call.
    template <typename F>
    void for_each(F&& f) {
        for (T* e = head_; e;) {
            T* next = static_cast<Hook&>(*e).next_;
            f(e);
            e = next;
        }
    }

    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }

private:
    T* head_ = nullptr;
    size_t size_ = 0;
};

}  // namespace sniroute::core
